"""The study-independent machinery every study runs on.

- keys: counter-based JAX keys (seed, study, point, block);
- blocks: which blocks a shard computes, joining shards, non-finite blocks, chunk sizes;
- sharding: networks of a block over every visible device;
- simulate: the one simulate skeleton (a study supplies a kernel and a table of variables);
- progress: running a shard's blocks with a progress line;
- precision: float64 in JAX, switched on at the entry points;
- store and atomic: NetCDF files with provenance, written under a temporary name and renamed;
- layout: result paths;
- analysis, parallel: reading point files for an analysis, in worker processes where many.
"""

"""The study-independent machinery every study runs on.

- keys: counter-based JAX keys (seed, study, point, block);
- nonfinite: which networks of a chunk hold a NaN or inf (inside the kernels);
- blocks: which blocks a shard computes, joining shards, non-finite blocks, chunk sizes;
- sharding: networks of a block over every visible device;
- simulate: the one simulate skeleton (a study supplies a kernel and a table of variables);
- progress: running a shard's blocks with a progress line;
- precision: float64 in JAX, switched on at the entry points;
- store and atomic: NetCDF files with provenance, written under a temporary name and renamed;
- layout: result paths;
- analysis: reading a study's point files for its analysis; parallel: mapping a function over
  files in worker processes (the hidden study's analysis, ``nnfield verify``).
"""

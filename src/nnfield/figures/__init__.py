"""The house style shared by every figure (style) and its layout checks (textcheck); each study
draws its own figures in nnfield.studies.<name>.figures."""

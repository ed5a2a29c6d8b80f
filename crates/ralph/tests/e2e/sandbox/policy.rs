//! The sandbox's promises besides the corpus: fail-closed, the work root as a parameter, strict
//! mode, and gates.

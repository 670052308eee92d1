"""Plain-loop numba kernels. Modules here import only numpy and numba."""

// The single translation unit of the Isthmus CUDA kernels: nvcc compiles it into one fatbin (one module to
// load), and the emulator build compiles it with the host C++ compiler. Each included file states the memory
// layout its kernels assume.
#include "rows.cu"
#include "matvec.cu"
#include "rowwise.cu"
#include "elementwise.cu"
#include "rope.cu"
#include "attention.cu"

package dev.isthmus.backend.cuda;

/** A CUDA driver, emulator or cuBLAS call that failed; the message names the call, the error and its code. */
public final class CudaException extends RuntimeException {
    @java.io.Serial
    private static final long serialVersionUID = 1L;

    private final int code;

    public CudaException(String message, int code) {
        super(message);
        this.code = code;
    }

    /** The {@code CUresult} (or {@code cublasStatus_t}) value. */
    public int code() {
        return code;
    }
}

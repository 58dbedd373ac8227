package dev.isthmus.conformance;

/** A rule broken by the backend (wrote outside its output, modified an input): the case FAILs. */
final class CaseFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;

    CaseFailure(String message) {
        super(message, null, false, false);
    }
}

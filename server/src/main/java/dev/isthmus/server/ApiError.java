package dev.isthmus.server;

/**
 * An error answered with an OpenAI-style body: {@code {"error": {"message", "type", "param", "code"}}}.
 */
public final class ApiError extends RuntimeException {
    private static final long serialVersionUID = 1L;

    final int status;
    final String type;
    final String param;
    final String code;
    final int retryAfterSeconds;

    public ApiError(int status, String message, String type, String param, String code, int retryAfterSeconds) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    static ApiError invalid(String message, String param) {
        return new ApiError(400, message, "invalid_request_error", param, null, 0);
    }

    static ApiError invalid(String message, String param, String code) {
        return new ApiError(400, message, "invalid_request_error", param, code, 0);
    }

    static ApiError badJson() {
        return new ApiError(400, "We could not parse the JSON body of your request. (HINT: This likely means you "
                + "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
                + "sent was not valid JSON.)", "invalid_request_error", null, null, 0);
    }

    static ApiError unknownModel(String model) {
        return new ApiError(404, "The model `" + model + "` does not exist or you do not have access to it.",
                "invalid_request_error", null, "model_not_found", 0);
    }

    static ApiError tooLarge(long limit) {
        return new ApiError(413, "Request body too large: the limit is " + limit + " bytes.",
                "invalid_request_error", null, "request_too_large", 0);
    }

    static ApiError contextLength(int context, int promptTokens, int maxTokens, String param) {
        String msg = maxTokens > 0
                ? "This model's maximum context length is " + context + " tokens. However, you requested "
                + (promptTokens + maxTokens) + " tokens (" + promptTokens + " in the " + param + ", " + maxTokens
                + " in the completion). Please reduce the length of the " + param + " or completion."
                : "This model's maximum context length is " + context + " tokens. However, your " + param
                + " resulted in " + promptTokens + " tokens. Please reduce the length of the " + param + ".";
        return new ApiError(400, msg, "invalid_request_error", param, "context_length_exceeded", 0);
    }

    static ApiError overloaded(String message, int retryAfter) {
        return new ApiError(429, message, "requests", null, "rate_limit_exceeded", retryAfter);
    }

    static ApiError notFound(String method, String path) {
        return new ApiError(404, "Invalid URL (" + method + " " + path + ")", "invalid_request_error", null, null, 0);
    }

    static ApiError server(String message) {
        return new ApiError(500, message, "server_error", null, null, 0);
    }
}

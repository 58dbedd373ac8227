package dev.isthmus.api.spi;

/**
 * The answer of {@link BackendProvider#probe()}.
 *
 * @param available whether the backend can be created
 * @param detail    if available, what it found (version, ISA, device); otherwise why not, for humans
 */
public record Availability(boolean available, String detail) {
    public static Availability available(String detail) {
        return new Availability(true, detail);
    }

    public static Availability unavailable(String reason) {
        return new Availability(false, reason);
    }
}

package dev.isthmus.engine.generation;

import java.util.List;

/**
 * Holds back streamed text that might be the start of a stop string, so that a stop string is never
 * partly emitted.
 */
public final class StopMatcher {
    private final List<String> stops;
    private final StringBuilder pending = new StringBuilder();
    private boolean stopped;

    public StopMatcher(List<String> stops) {
        this.stops = stops;
    }

    /** Adds text; returns what is now safe to emit. */
    public String push(String piece) {
        if (stopped) {
            return "";
        }
        pending.append(piece);
        int cut = -1;
        for (String s : stops) {
            int i = pending.indexOf(s);
            if (i >= 0 && (cut < 0 || i < cut)) {
                cut = i;
            }
        }
        if (cut >= 0) {
            stopped = true;
            String out = pending.substring(0, cut);
            pending.setLength(0);
            return out;
        }
        int keep = 0;
        String text = pending.toString();
        for (String s : stops) {
            for (int len = Math.min(s.length() - 1, text.length()); len > keep; len--) {
                if (text.regionMatches(text.length() - len, s, 0, len)) {
                    keep = len;
                    break;
                }
            }
        }
        String out = pending.substring(0, pending.length() - keep);
        pending.delete(0, pending.length() - keep);
        return out;
    }

    /** Text still held back, released when generation ends without a stop string. */
    public String flush() {
        String out = stopped ? "" : pending.toString();
        pending.setLength(0);
        return out;
    }

    public boolean stopped() {
        return stopped;
    }
}

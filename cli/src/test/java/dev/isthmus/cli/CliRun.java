package dev.isthmus.cli;

import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;

/**
 * One run of the {@code isthmus} command in process, as a user runs it: its exit code and what it printed.
 * picocli's own out and err writers are always captured. What a command writes to {@code System.out} (streamed
 * tokens, reports) or {@code System.err} (progress, statistics) is captured only by the variants that say so,
 * and then stands before picocli's text; otherwise it goes to the console as it would.
 */
record CliRun(int exit, String out, String err) {
    /** Runs {@code isthmus args}, capturing picocli's out and err writers only. */
    static CliRun run(String... args) {
        return execute(false, false, args);
    }

    /** Runs {@code isthmus args}, capturing {@code System.out} too (into {@link #out()}). */
    static CliRun runWithSystemOut(String... args) {
        return execute(true, false, args);
    }

    /** Runs {@code isthmus args}, capturing {@code System.out} and {@code System.err} too. */
    static CliRun runWithSystemOutAndErr(String... args) {
        return execute(true, true, args);
    }

    private static CliRun execute(boolean systemOut, boolean systemErr, String... args) {
        PrintStream originalOut = System.out;
        PrintStream originalErr = System.err;
        ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
        ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit;
        try {
            if (systemOut) {
                System.setOut(new PrintStream(outBytes, true, StandardCharsets.UTF_8));
            }
            if (systemErr) {
                System.setErr(new PrintStream(errBytes, true, StandardCharsets.UTF_8));
            }
            CommandLine cl = Isthmus.commandLine();
            cl.setOut(new PrintWriter(out, true));
            cl.setErr(new PrintWriter(err, true));
            exit = cl.execute(args);
        } finally {
            if (systemOut) {
                System.setOut(originalOut);
            }
            if (systemErr) {
                System.setErr(originalErr);
            }
        }
        return new CliRun(exit, outBytes.toString(StandardCharsets.UTF_8) + out,
                errBytes.toString(StandardCharsets.UTF_8) + err);
    }
}

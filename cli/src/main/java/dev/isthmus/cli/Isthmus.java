package dev.isthmus.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code isthmus} command. */
// INHERIT: every subcommand answers -h/--help (and -V) too, without declaring it.
@Command(name = "isthmus", mixinStandardHelpOptions = true, scope = CommandLine.ScopeType.INHERIT,
        version = "isthmus 0.1.0",
        description = "LLM inference on the JVM over pluggable backends.",
        subcommands = {BackendsCommand.class, ConformanceCommand.class, RunCommand.class, TokenizeCommand.class,
                InfoCommand.class, BenchCommand.class, SynthCommand.class, QuantizeCommand.class,
                PerplexityCommand.class,
                ServeCommand.class, CommandLine.HelpCommand.class})
public final class Isthmus {
    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The command line with the error handling every subcommand shares. */
    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Isthmus());
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            cmd.getErr().println("isthmus: " + UserErrors.describe(e));
            if (Boolean.getBoolean("isthmus.debug")) {
                e.printStackTrace(cmd.getErr());
            }
            return 1;
        });
        return cl;
    }
}

package dev.isthmus.server;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;

import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A Hugging Face chat template ({@code tokenizer.chat_template}, Jinja2) rendered with Jinjava, with the
 * globals such templates expect: {@code messages}, {@code add_generation_prompt}, {@code bos_token},
 * {@code eos_token}, {@code raise_exception(msg)} and {@code strftime_now(fmt)}.
 */
public final class ChatTemplate {
    /**
     * Used when the model has no template (or one Jinjava cannot render): plain "User:"/"Assistant:"
     * turns, which a base model continues sensibly and which needs no special tokens.
     */
    public static final String FALLBACK = "{% for message in messages %}"
            + "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
            + "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
            + "{% else %}Assistant: {{ message['content'] }}\n{% endif %}"
            + "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}";

    private final String source;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinjava;

    public ChatTemplate(String source, String bosToken, String eosToken) {
        this.source = source;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.jinjava = new Jinjava(JinjavaConfig.newBuilder()
                .withTrimBlocks(false).withLstripBlocks(false)
                .withMaxOutputSize(16L << 20)
                .build());
        jinjava.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", String.class));
        jinjava.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
    }

    /**
     * The model's template if it renders a simple conversation, else {@link #FALLBACK}; {@code warn}
     * receives the reason for falling back.
     */
    public static ChatTemplate forModel(String modelTemplate, String bosToken, String eosToken,
                                        java.util.function.Consumer<String> warn) {
        if (modelTemplate == null || modelTemplate.isBlank()) {
            return new ChatTemplate(FALLBACK, bosToken, eosToken);
        }
        ChatTemplate t = new ChatTemplate(modelTemplate, bosToken, eosToken);
        try {
            t.render(List.of(Map.of("role", "user", "content", "Hello")), true);
            return t;
        } catch (TemplateException e) {
            warn.accept("the model's chat template does not render (" + e.getMessage() + "); using a plain one");
            return new ChatTemplate(FALLBACK, bosToken, eosToken);
        }
    }

    /** The template of a model's {@code tokenizer.chat_template}, or the fallback. */
    public static ChatTemplate forModel(dev.isthmus.engine.model.Model model, java.util.function.Consumer<String> warn) {
        var tok = model.tokenizer();
        String bos = tok.bos() >= 0 ? tok.piece(tok.bos()) : "";
        String eos = tok.eos() >= 0 ? tok.piece(tok.eos()) : "";
        return forModel(model.file().metadata().getString("tokenizer.chat_template", null), bos, eos, warn);
    }

    public String source() {
        return source;
    }

    /**
     * Renders a conversation.
     *
     * @param messages maps with {@code role} and {@code content} (and whatever else the template reads)
     * @throws TemplateException if the template fails or calls {@code raise_exception}
     */
    public String render(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
        Map<String, Object> ctx = new HashMap<>();
        ctx.put("messages", messages);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        ctx.put("bos_token", bosToken);
        ctx.put("eos_token", eosToken);
        RenderResult r;
        try {
            r = jinjava.renderForResult(source, ctx);
        } catch (RuntimeException e) {
            throw new TemplateException(rootMessage(e));
        }
        for (TemplateError e : r.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new TemplateException(e.getException() != null ? rootMessage(e.getException()) : e.getMessage());
            }
        }
        return r.getOutput();
    }

    private static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c.getMessage() != null ? c.getMessage() : c.toString();
    }

    /** {@code raise_exception(message)} of HF templates. */
    public static String raiseException(String message) {
        throw new TemplateException(message);
    }

    /** {@code strftime_now(format)} of HF templates (the common directives). */
    public static String strftimeNow(String format) {
        String java = format.replace("%d", "dd").replace("%b", "MMM").replace("%B", "MMMM").replace("%Y", "yyyy")
                .replace("%m", "MM").replace("%y", "yy").replace("%A", "EEEE").replace("%a", "EEE");
        return LocalDate.now().format(DateTimeFormatter.ofPattern(java, Locale.ROOT));
    }

    /** A template that failed to render. */
    public static final class TemplateException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public TemplateException(String message) {
            super(message);
        }
    }
}

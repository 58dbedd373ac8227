package dev.isthmus.server;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real chat templates (as shipped in GGUF metadata) rendered by Jinjava. */
class ChatTemplateTest {
    private static final List<Map<String, Object>> CONVERSATION = List.of(
            Map.of("role", "system", "content", "Be brief."),
            Map.of("role", "user", "content", "Hi!"));

    @Test
    void chatMl() {
        String t = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
                + "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
                new ChatTemplate(t, "", "<|im_end|>").render(CONVERSATION, true));
    }

    @Test
    void llama3() {
        String t = "{% set loop_messages = messages %}{% for message in loop_messages %}"
                + "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
                + "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
                + "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
                + "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
        String out = new ChatTemplate(t, "<|begin_of_text|>", "<|eot_id|>").render(CONVERSATION, true);
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", out);
    }

    @Test
    void raiseExceptionFailsTheRender() {
        String t = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}";
        ChatTemplate.TemplateException e = assertThrows(ChatTemplate.TemplateException.class,
                () -> new ChatTemplate(t, "", "").render(CONVERSATION, true));
        assertTrue(e.getMessage().contains("System role not supported"), e.getMessage());
    }

    @Test
    void fallbackWhenAbsentOrBroken() {
        List<String> warnings = new java.util.ArrayList<>();
        ChatTemplate none = ChatTemplate.forModel(null, "<s>", "</s>", warnings::add);
        assertEquals("Be brief.\n\nUser: Hi!\nAssistant:", none.render(CONVERSATION, true));
        ChatTemplate broken = ChatTemplate.forModel("{% for %}", "<s>", "</s>", warnings::add);
        assertEquals(ChatTemplate.FALLBACK, broken.source());
        assertEquals(1, warnings.size());
    }
}

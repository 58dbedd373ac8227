package dev.isthmus.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Tokenizers of the shared models against outputs of llama.cpp and llama2.c. */
class TokenizerGoldenTest {
    @Test
    void llama2PromptWithBos() {
        Tokenizer tokenizer = Tokenizers.fromMetadata(Vocabs.ggufMetadata(Vocabs.file("models/llama-2-tiny-random.gguf")));
        assertArrayEquals(new int[] {1, 15043, 3186}, tokenizer.encode("Hello world", true, false));
        assertArrayEquals(new int[] {1, 15043, 3186}, tokenizer.encode("Hello world"));
        assertArrayEquals(new int[] {1, 306, 4658, 278, 6593, 310, 2834, 338},
                tokenizer.encode("I believe the meaning of life is", true, false));
    }

    /** llama.cpp's generated text for the tiny Llama-2 model: a continuation, so its first space stays. */
    @Test
    void llama2GeneratedTextStreams() throws IOException {
        Tokenizer tokenizer = Tokenizers.fromMetadata(Vocabs.ggufMetadata(Vocabs.file("models/llama-2-tiny-random.gguf")));
        String golden = Files.readString(Vocabs.file("golden/llama-2-tiny-random.hello-world.greedy16.txt"), StandardCharsets.UTF_8);
        int[] generated = Arrays.stream(field(golden, "gen_ids").split(" ")).mapToInt(Integer::parseInt).toArray();
        String expected = field(golden, "text");

        StreamingDecoder decoder = tokenizer.streamingDecoder();
        StringBuilder streamed = new StringBuilder();
        for (int id : generated) {
            streamed.append(decoder.push(id));
        }
        streamed.append(decoder.flush());
        assertEquals(expected, streamed.toString());
    }

    /** llama2.c's test output for stories260K: BOS, then 200 greedy tokens decoded as run.c prints them. */
    @Test
    void stories260KGreedyTextDecodes() throws IOException {
        Tokenizer tokenizer = Tokenizers.fromMetadata(Vocabs.ggufMetadata(Vocabs.file("models/stories260K.gguf")));
        String json = Files.readString(Vocabs.file("golden/stories260K.greedy200.ids.json"), StandardCharsets.UTF_8);
        Matcher list = Pattern.compile("\"generated_ids\"\\s*:\\s*\\[([^\\]]*)]").matcher(json);
        assertTrue(list.find(), "generated_ids in " + json);
        int[] generated = Arrays.stream(list.group(1).split(",")).map(String::strip).mapToInt(Integer::parseInt).toArray();
        assertEquals(200, generated.length);
        int[] sequence = new int[generated.length + 1];
        sequence[0] = tokenizer.bos();
        System.arraycopy(generated, 0, sequence, 1, generated.length);

        String expected = Files.readString(Vocabs.file("golden/stories260K.greedy200.expected.txt"), StandardCharsets.UTF_8);
        assertEquals(expected, tokenizer.decode(sequence));

        StreamingDecoder decoder = tokenizer.streamingDecoder();
        StringBuilder streamed = new StringBuilder();
        for (int id : sequence) {
            streamed.append(decoder.push(id));
        }
        assertEquals(expected, streamed.append(decoder.flush()).toString());
    }

    /** The value after {@code "name: "} on its own line of a golden text file. */
    private static String field(String golden, String name) {
        for (String line : golden.split("\n")) {
            if (line.startsWith(name + ": ")) {
                return line.substring(name.length() + 2);
            }
        }
        throw new AssertionError("no '" + name + ":' line in " + golden);
    }
}

package dev.isthmus.engine.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import org.junit.jupiter.api.Test;

class MetadataTest {
    private static Metadata sample() {
        LinkedHashMap<String, Object> m = new LinkedHashMap<>();
        m.put("s", "text");
        m.put("i", 42);
        m.put("u32", 4_000_000_000L);
        m.put("f", 1.5f);
        m.put("d", 2.25);
        m.put("b", true);
        m.put("strings", new String[] {"a", "b"});
        m.put("ints", new int[] {1, -2});
        m.put("longs", new long[] {3, 4});
        m.put("bigLongs", new long[] {1L << 40});
        m.put("floats", new float[] {0.5f});
        m.put("doubles", new double[] {0.25});
        return new Metadata(m, "model.gguf");
    }

    @Test
    void typedAccessorsConvertCompatibleTypes() {
        Metadata md = sample();
        assertEquals(List.of("s", "i", "u32", "f", "d", "b", "strings", "ints", "longs", "bigLongs", "floats", "doubles"),
                List.copyOf(md.asMap().keySet()));
        assertEquals("text", md.getString("s", null));
        assertEquals("text", md.require("s"));
        assertEquals(42, md.getInt("i", 0));
        assertEquals(42L, md.getLong("i", 0));
        assertEquals(4_000_000_000L, md.getLong("u32", 0));
        assertEquals(42f, md.getFloat("i", 0));
        assertEquals(1.5f, md.getFloat("f", 0));
        assertEquals(2.25f, md.getFloat("d", 0));
        assertTrue(md.getBool("b", false));
        assertArrayEquals(new String[] {"a", "b"}, md.getStringArray("strings"));
        assertArrayEquals(new int[] {1, -2}, md.getIntArray("ints"));
        assertArrayEquals(new int[] {3, 4}, md.getIntArray("longs"));
        assertArrayEquals(new float[] {1, -2}, md.getFloatArray("ints"));
        assertArrayEquals(new float[] {0.25f}, md.getFloatArray("doubles"));
        assertArrayEquals(new float[] {0.5f}, md.getFloatArray("floats"));
        assertTrue(md.has("s"));
        assertFalse(md.has("missing"));
        assertNull(md.get("missing"));
        assertEquals("def", md.getString("missing", "def"));
        assertEquals(7, md.getInt("missing", 7));
        assertNull(md.getStringArray("missing"));
        assertNull(md.getIntArray("missing"));
        assertNull(md.getFloatArray("missing"));
    }

    @Test
    void accessorsReturnCopiesAndTheMapIsUnmodifiable() {
        Metadata md = sample();
        md.getIntArray("ints")[0] = 99;
        assertEquals(1, md.getIntArray("ints")[0]);
        assertThrows(UnsupportedOperationException.class, () -> md.asMap().put("x", 1));
    }

    @Test
    void wrongTypesAndRangesNameTheKey() {
        Metadata md = sample();
        assertMessage(assertThrows(ModelFormatException.class, () -> md.getInt("u32", 0)), "model.gguf", "'u32'", "4000000000");
        assertMessage(assertThrows(ModelFormatException.class, () -> md.getLong("s", 0)), "'s'", "integer", "text");
        assertMessage(assertThrows(ModelFormatException.class, () -> md.getString("i", null)), "'i'", "string");
        assertMessage(assertThrows(ModelFormatException.class, () -> md.getBool("i", false)), "'i'", "bool");
        assertMessage(assertThrows(ModelFormatException.class, () -> md.getFloat("s", 0)), "'s'", "number");
        assertMessage(assertThrows(ModelFormatException.class, () -> md.getLong("f", 0)), "'f'", "integer");
        assertMessage(assertThrows(ModelFormatException.class, () -> md.getIntArray("floats")), "'floats'");
        assertMessage(assertThrows(ModelFormatException.class, () -> md.getIntArray("bigLongs")), "'bigLongs'", "element #0");
        assertMessage(assertThrows(ModelFormatException.class, () -> md.getStringArray("ints")), "'ints'", "string array");
        assertMessage(assertThrows(ModelFormatException.class, () -> md.getFloatArray("strings")), "'strings'");
        assertMessage(assertThrows(ModelFormatException.class, () -> md.require("missing")), "'missing'", "missing");
        assertMessage(assertThrows(ModelFormatException.class, () -> md.require("i")), "'i'");
    }

    static void assertMessage(Throwable e, String... parts) {
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), () -> "message lacks \"" + p + "\": " + e.getMessage());
        }
    }
}

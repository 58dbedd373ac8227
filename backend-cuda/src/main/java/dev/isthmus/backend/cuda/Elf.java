package dev.isthmus.backend.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Just enough of ELF64 (little-endian) to list the global function symbols of a cubin: the section headers, the
 * {@code SHT_SYMTAB} section and its string table (ELF specification, "Sections" and "Symbol Table").
 */
final class Elf {
    private Elf() {
    }

    private static final int SHT_SYMTAB = 2;
    private static final int STT_FUNC = 2;
    private static final int STB_GLOBAL = 1;

    static List<String> globalFunctions(byte[] elf) {
        if (elf.length < 64 || elf[0] != 0x7F || elf[1] != 'E' || elf[2] != 'L' || elf[3] != 'F') {
            throw new Fatbin.FormatException("fatbin ELF entry does not start with the ELF magic");
        }
        if (elf[4] != 2 || elf[5] != 1) {
            throw new Fatbin.FormatException("fatbin ELF entry is not 64-bit little-endian");
        }
        ByteBuffer b = ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN);
        long shoff = b.getLong(0x28);
        int shentsize = Short.toUnsignedInt(b.getShort(0x3A));
        int shnum = Short.toUnsignedInt(b.getShort(0x3C));
        if (shoff <= 0 || shentsize < 64 || shoff + (long) shnum * shentsize > elf.length) {
            throw new Fatbin.FormatException("fatbin ELF entry has section headers outside the entry");
        }
        List<String> out = new ArrayList<>();
        for (int i = 0; i < shnum; i++) {
            int sh = (int) (shoff + (long) i * shentsize);
            if (b.getInt(sh + 4) != SHT_SYMTAB) {
                continue;
            }
            long off = b.getLong(sh + 0x18);
            long size = b.getLong(sh + 0x20);
            int link = b.getInt(sh + 0x28);
            long entsize = b.getLong(sh + 0x38);
            int strSh = (int) (shoff + (long) link * shentsize);
            long strOff = b.getLong(strSh + 0x18);
            long strSize = b.getLong(strSh + 0x20);
            if (entsize < 24 || off + size > elf.length || strOff + strSize > elf.length) {
                throw new Fatbin.FormatException("fatbin ELF entry has a symbol table outside the entry");
            }
            for (long s = off; s + entsize <= off + size; s += entsize) {
                int name = b.getInt((int) s);
                int info = Byte.toUnsignedInt(b.get((int) s + 4));
                if ((info & 0xF) == STT_FUNC && (info >> 4) == STB_GLOBAL && name > 0 && name < strSize) {
                    int start = (int) (strOff + name);
                    int end = start;
                    while (end < strOff + strSize && elf[end] != 0) {
                        end++;
                    }
                    out.add(new String(elf, start, end - start, StandardCharsets.US_ASCII));
                }
            }
        }
        return out;
    }
}

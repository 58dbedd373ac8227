package dev.isthmus.api.discovery;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;
import dev.isthmus.api.spi.Backend;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/** The op × dtype combinations the product uses, and which of them a backend lacks. */
public final class Capabilities {
    private static final List<DType> WEIGHT_TYPES = List.of(DType.F32, DType.F16, DType.BF16,
            DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1,
            DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K, DType.Q8_K);
    private static final List<DType> CACHE_TYPES = List.of(DType.F32, DType.F16, DType.BF16);

    private Capabilities() {
    }

    /** For each op, the dtypes its capability query is asked about. */
    public static Map<Op, List<DType>> matrix() {
        Map<Op, List<DType>> m = new EnumMap<>(Op.class);
        for (Op op : Op.values()) {
            m.put(op, switch (op) {
                case MATMUL, DEQUANTIZE, EMBEDDING_LOOKUP -> WEIGHT_TYPES;
                case COPY_ROWS, ATTENTION -> CACHE_TYPES;
                default -> List.of(DType.F32);
            });
        }
        return m;
    }

    /** One op for one dtype. */
    public record Pair(Op op, DType dtype) {
        @Override
        public String toString() {
            return op + "(" + dtype + ")";
        }
    }

    /** The combinations of {@link #matrix()} that {@code backend} does not support. */
    public static List<Pair> gaps(Backend backend) {
        List<Pair> gaps = new ArrayList<>();
        matrix().forEach((op, types) -> {
            for (DType t : types) {
                if (!backend.supports(op, t)) {
                    gaps.add(new Pair(op, t));
                }
            }
        });
        return gaps;
    }
}

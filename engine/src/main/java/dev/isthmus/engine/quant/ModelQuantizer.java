package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.TensorInfo;
import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.gguf.GgufType;
import dev.isthmus.engine.gguf.GgufWriter;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Converts a model file to a GGUF file of another {@link QuantRecipe}, like {@code llama-quantize}: every
 * metadata value is copied (a GGUF file's value types kept), {@code general.file_type} and
 * {@code general.quantization_version} are set as llama.cpp sets them, and each tensor is either converted
 * row by row or copied byte for byte, in the input's order.
 */
public final class ModelQuantizer {
    /** ggml's GGML_QNT_VERSION, written to {@code general.quantization_version}. */
    public static final int QUANTIZATION_VERSION = 2;

    private ModelQuantizer() {
    }

    /**
     * The plan for {@code in}: the type each tensor will get.
     *
     * @throws IllegalArgumentException if a tensor that would change type holds integers, or is already
     *                                  quantized and {@code allowRequantize} is false
     */
    public static List<QuantRecipe.Choice> plan(ModelFile in, QuantRecipe recipe, boolean allowRequantize) {
        List<QuantRecipe.Tensor> tensors = new ArrayList<>();
        for (TensorInfo t : in.tensorInfos()) {
            tensors.add(new QuantRecipe.Tensor(t.name(), t.shape(), t.dtype()));
        }
        List<QuantRecipe.Choice> plan = recipe.plan(tensors);
        for (QuantRecipe.Choice c : plan) {
            DType source = c.tensor().source();
            if (!c.converts()) {
                continue;
            }
            if (!Quantizer.supports(source)) {
                throw new IllegalArgumentException("tensor '" + c.tensor().name() + "' holds " + source
                        + " integers and cannot become " + c.type());
            }
            if (source.isQuantized() && !allowRequantize) {
                throw new IllegalArgumentException("tensor '" + c.tensor().name() + "' is already " + source
                        + "; converting it to " + c.type() + " would compound two quantization errors"
                        + " (allow requantizing to do it anyway)");
            }
        }
        return plan;
    }

    /**
     * Writes {@code in} converted by {@code recipe} to {@code out} (replaced only once complete).
     *
     * @param threads  threads that quantize each tensor's rows
     * @param onTensor told of each tensor just before its data is written, in file order
     * @return the plan that was carried out
     * @throws IllegalArgumentException as {@link #plan}
     */
    public static List<QuantRecipe.Choice> quantize(ModelFile in, Path out, QuantRecipe recipe, boolean allowRequantize,
                                                     int threads, Consumer<QuantRecipe.Choice> onTensor)
            throws IOException {
        List<QuantRecipe.Choice> plan = plan(in, recipe, allowRequantize);
        GgufWriter w = new GgufWriter();
        if (in instanceof GgufFile g) {
            w.putAll(g);
        } else {
            w.putAll(in.metadata());
        }
        w.put("general.quantization_version", QUANTIZATION_VERSION, GgufType.UINT32);
        w.put("general.file_type", recipe.fileType(), GgufType.UINT32);
        for (QuantRecipe.Choice c : plan) {
            String name = c.tensor().name();
            long[] shape = c.tensor().shape();
            w.tensor(name, c.type(), shape, target -> {
                onTensor.accept(c);
                Tensor src = in.tensor(name);
                if (!c.converts()) {
                    // Model file tensors are contiguous views of the mapping: one copy moves them.
                    MemorySegment.copy(src.segment(), 0, target, 0, target.byteSize());
                    return;
                }
                Quantization.quantizeRows(c.type(), src.rows(), Math.toIntExact(src.cols()), Quantization.rowsOf(src),
                        target, threads);
            });
        }
        w.write(out);
        return plan;
    }
}

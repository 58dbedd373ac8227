package dev.isthmus.engine.format;

import dev.isthmus.api.Tensor;
import java.nio.file.Path;
import java.util.List;

/**
 * An opened model file: metadata plus tensors over the memory-mapped file.
 *
 * <p>Tensors returned by {@link #tensor(String)} are host tensors that view the mapping directly
 * (zero copy); they become invalid once the file is {@linkplain #close() closed}.
 */
public interface ModelFile extends AutoCloseable {
    /** The model file. */
    Path path();

    /** {@code "gguf"}, {@code "llama2c"}, {@code "safetensors"} or {@code "safetensors-gptq"}. */
    String format();

    /** Key/value metadata, with GGUF key names. */
    Metadata metadata();

    /** Every tensor, in file order. */
    List<TensorInfo> tensorInfos();

    boolean hasTensor(String name);

    /**
     * A host tensor over the mapped file.
     *
     * @throws ModelFormatException naming the tensor if there is none of that name
     */
    Tensor tensor(String name);

    /** Unmaps the file; tensors obtained from it must not be used afterwards. */
    @Override
    void close();
}

package dev.isthmus.engine.graph;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Rope;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.model.ModelConfig;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The decoder-only transformer (Llama 1/2/3, Mistral, Qwen2), written only against the operator SPI so
 * that it runs on whichever backend it is given.
 *
 * <p>Per block: {@code x += wo·attention(rope(wq·norm(x)), rope(wk·norm(x)), wv·norm(x))}, then
 * {@code x += w2·(silu(w1·norm(x)) * w3·norm(x))}; finally {@code logits = output·norm(x)}.
 * Names follow the papers and GGUF ({@code wq}, {@code attnNorm}, {@code ropeTheta}).
 */
public final class Transformer implements AutoCloseable {
    /** Prompt tokens per forward pass in {@link #prefill}: bounds the activations a long prompt needs at once. */
    public static final int PREFILL_CHUNK = 512;

    private final ModelConfig config;
    private final Backend backend;
    private final List<Tensor> uploaded = new ArrayList<>();

    private final Tensor tokenEmbd;
    private final Tensor outputNorm;
    private final Tensor output;
    private final Layer[] layers;
    private final Rope rope;
    private final Attention attention;

    private int capacity;
    private Tensor x, xb, xb2, q, k, v, att, hb, hb2, xLogits, logits;

    private record Layer(Tensor attnNorm, Tensor wq, Tensor wk, Tensor wv, Tensor bq, Tensor bk, Tensor bv, Tensor wo,
                         Tensor ffnNorm, Tensor w1, Tensor w3, Tensor w2) {
        Tensor[] wqkv() {
            return new Tensor[] {wq, wk, wv};
        }
    }

    private Transformer(ModelConfig config, Backend backend, ModelFile file) {
        this.config = config;
        this.backend = backend;
        int dim = config.dim();
        tokenEmbd = weight(file, "token_embd.weight", config.vocabSize(), dim);
        outputNorm = weight(file, "output_norm.weight", dim);
        output = file.hasTensor("output.weight") ? weight(file, "output.weight", config.vocabSize(), dim) : tokenEmbd;
        layers = new Layer[config.layers()];
        for (int l = 0; l < layers.length; l++) {
            String p = "blk." + l + ".";
            layers[l] = new Layer(
                    weight(file, p + "attn_norm.weight", dim),
                    weight(file, p + "attn_q.weight", config.qDim(), dim),
                    weight(file, p + "attn_k.weight", config.kvDim(), dim),
                    weight(file, p + "attn_v.weight", config.kvDim(), dim),
                    optionalWeight(file, p + "attn_q.bias", config.qDim()),
                    optionalWeight(file, p + "attn_k.bias", config.kvDim()),
                    optionalWeight(file, p + "attn_v.bias", config.kvDim()),
                    weight(file, p + "attn_output.weight", dim, config.qDim()),
                    weight(file, p + "ffn_norm.weight", dim),
                    weight(file, p + "ffn_gate.weight", config.ffnDim(), dim),
                    weight(file, p + "ffn_up.weight", config.ffnDim(), dim),
                    weight(file, p + "ffn_down.weight", dim, config.ffnDim()));
        }
        float[] ropeFreqs = file.hasTensor("rope_freqs.weight")
                ? file.tensor("rope_freqs.weight").toFloatArray() : null;
        if (ropeFreqs != null && ropeFreqs.length != config.ropeDims() / 2) {
            throw new ModelFormatException(file.path() + ": tensor 'rope_freqs.weight' has " + ropeFreqs.length
                    + " values, expected " + config.ropeDims() / 2);
        }
        rope = new Rope(config.ropeLayout(), config.ropeDims(), config.ropeTheta(), config.ropeFreqScale(), ropeFreqs);
        attention = new Attention((float) (1 / Math.sqrt(config.headDim())), true, config.slidingWindow(), null, 0f);
    }

    /**
     * Builds the graph over a model file's weights. On a backend whose memory is host memory the weights
     * stay memory-mapped (zero copy); otherwise they are copied to the device once.
     *
     * @throws ModelFormatException naming the tensor if a weight is missing or has the wrong shape
     */
    public static Transformer load(ModelFile file, Backend backend) {
        if (!file.hasTensor("token_embd.weight")) {
            throw new ModelFormatException(file.path() + ": no tensor 'token_embd.weight'");
        }
        int vocabRows = Math.toIntExact(file.tensor("token_embd.weight").dim(0));
        ModelConfig config = ModelConfig.from(file.metadata(), vocabRows, file.path().toString());
        return new Transformer(config, backend, file);
    }

    public ModelConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    /** A KV cache fitting this model for {@code sequences} sequences of up to {@code capacity} tokens. */
    public KvCache newCache(int sequences, int capacity, DType dtype) {
        return new KvCache(backend, config.layers(), config.kvHeads(), config.headDim(), sequences, capacity, dtype);
    }

    /**
     * Evaluates a prompt as sequence 0 from position 0, in passes of at most {@value #PREFILL_CHUNK} tokens,
     * appending its keys and values to {@code cache}.
     *
     * @return F32 logits {@code [1, vocab]} after the last token, as {@link #forward} returns them
     */
    public Tensor prefill(int[] prompt, KvCache cache) {
        Tensor logits = null;
        for (int from = 0; from < prompt.length; from += PREFILL_CHUNK) {
            int[] chunk = Arrays.copyOfRange(prompt, from, Math.min(prompt.length, from + PREFILL_CHUNK));
            logits = forward(Batch.ofSequence(0, from, chunk), cache);
        }
        return logits;
    }

    /**
     * Runs the batch through the model, appending its keys and values to {@code cache}.
     *
     * @return F32 logits {@code [batch.logitRows().length, vocab]} on the backend's device, valid until the
     * next call
     */
    public Tensor forward(Batch batch, KvCache cache) {
        int n = batch.size();
        ensureCapacity(n);
        Tensor x = this.x.slice(0, n), xb = this.xb.slice(0, n), xb2 = this.xb2.slice(0, n);
        Tensor q = this.q.slice(0, n), k = this.k.slice(0, n), v = this.v.slice(0, n), att = this.att.slice(0, n);
        Tensor hb = this.hb.slice(0, n), hb2 = this.hb2.slice(0, n);
        Tensor[] qkv = {q, k, v};
        Tensor qHeads = q.reshape(n, config.heads(), config.headDim());
        Tensor kHeads = k.reshape(n, config.kvHeads(), config.headDim());
        Tensor attHeads = att.reshape(n, config.heads(), config.headDim());
        int[] slots = cache.slots(batch);
        KvLayout layout = cache.commit(batch);
        float eps = config.normEps();

        backend.embeddingLookup(tokenEmbd, batch.tokens(), x);
        for (int l = 0; l < layers.length; l++) {
            Layer layer = layers[l];
            backend.rmsNorm(x, layer.attnNorm, eps, xb);
            backend.matmul(xb, layer.wqkv(), qkv);
            addBias(q, layer.bq);
            addBias(k, layer.bk);
            addBias(v, layer.bv);
            backend.rope(qHeads, batch.positions(), rope);
            backend.rope(kHeads, batch.positions(), rope);
            backend.copyRows(k, cache.keyRows(l), slots);
            backend.copyRows(v, cache.valueRows(l), slots);
            backend.attention(qHeads, cache.keyHeads(l), cache.valueHeads(l), layout, attention, attHeads);
            backend.matmul(att, layer.wo, xb2);
            backend.add(x, xb2, x);

            backend.rmsNorm(x, layer.ffnNorm, eps, xb);
            backend.matmulSwiglu(xb, layer.w1, layer.w3, hb, hb2);
            backend.matmul(hb, layer.w2, xb2);
            backend.add(x, xb2, x);
        }

        int[] rows = batch.logitRows();
        Tensor last = gatherRows(x, rows);
        Tensor xl = xLogits.slice(0, rows.length);
        backend.rmsNorm(last, outputNorm, eps, xl);
        Tensor out = logits.slice(0, rows.length);
        backend.matmul(xl, output, out);
        return out;
    }

    private void addBias(Tensor out, Tensor bias) {
        if (bias != null) {
            backend.add(out, bias, out);
        }
    }

    /** The rows of {@code x} listed in {@code rows}: a view when they are consecutive, else a copy. */
    private Tensor gatherRows(Tensor x, int[] rows) {
        if (rows[rows.length - 1] - rows[0] == rows.length - 1) {
            return x.slice(rows[0], rows.length);
        }
        Tensor gathered = xb.slice(0, rows.length);
        for (int i = 0; i < rows.length; i++) {
            backend.copy(x.slice(rows[i], 1), gathered.slice(i, 1));
        }
        return gathered;
    }

    private void ensureCapacity(int n) {
        if (n <= capacity) {
            return;
        }
        releaseScratch();
        int c = Math.max(n, Math.max(capacity * 2, 16));
        x = backend.allocate(DType.F32, c, config.dim());
        xb = backend.allocate(DType.F32, c, config.dim());
        xb2 = backend.allocate(DType.F32, c, config.dim());
        q = backend.allocate(DType.F32, c, config.qDim());
        k = backend.allocate(DType.F32, c, config.kvDim());
        v = backend.allocate(DType.F32, c, config.kvDim());
        att = backend.allocate(DType.F32, c, config.qDim());
        hb = backend.allocate(DType.F32, c, config.ffnDim());
        hb2 = backend.allocate(DType.F32, c, config.ffnDim());
        xLogits = backend.allocate(DType.F32, c, config.dim());
        logits = backend.allocate(DType.F32, c, config.vocabSize());
        capacity = c;
    }

    private void releaseScratch() {
        for (Tensor t : new Tensor[] {x, xb, xb2, q, k, v, att, hb, hb2, xLogits, logits}) {
            if (t != null) {
                backend.release(t);
            }
        }
    }

    private Tensor weight(ModelFile file, String name, long... shape) {
        if (!file.hasTensor(name)) {
            throw new ModelFormatException(file.path() + ": missing tensor '" + name + "'");
        }
        Tensor t = file.tensor(name);
        if (t.rank() == 2 && shape.length == 1 && t.dim(0) == 1) {
            t = t.reshape(t.dim(1));
        }
        if (!Arrays.equals(t.shape(), shape)) {
            throw new ModelFormatException(file.path() + ": tensor '" + name + "' has shape "
                    + Arrays.toString(t.shape()) + ", expected " + Arrays.toString(shape));
        }
        return onDevice(t);
    }

    private Tensor optionalWeight(ModelFile file, String name, long... shape) {
        return file.hasTensor(name) ? weight(file, name, shape) : null;
    }

    private Tensor onDevice(Tensor host) {
        if (backend.device().hostAccessible()) {
            return host;
        }
        Tensor d = backend.allocate(host.dtype(), host.shape());
        backend.copy(host, d);
        uploaded.add(d);
        return d;
    }

    @Override
    public void close() {
        releaseScratch();
        uploaded.forEach(backend::release);
        uploaded.clear();
    }
}

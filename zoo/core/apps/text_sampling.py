"""Sampling and the key/value-cache loop for the text models' phone-app loops: NumPy only, no TensorFlow, no zoo.

``zoo/gpt/tflite_generate.py``, ``zoo/charrnn/tflite_generate.py`` and
``zoo/convert/tflite_generate.py`` import this file; to ship one of them in an app
without the zoo, copy it together with this file next to the ``.tflite``.
:func:`sample_token` is the NumPy twin of the in-graph
:func:`zoo.core.nn.text_generation.sample_token`: with the same uniform number both
pick the same token.
"""

import os

import numpy as np

try:  # in the repository
    from zoo.core.apps.manifest import add_threads_argument, verified_manifest
except ImportError:  # copied into an app next to manifest.py
    from manifest import add_threads_argument, verified_manifest

VOCAB_SIZE = 256  # byte values


def check_generation_options(prompt_bytes, max_new_tokens, temperature, top_k, top_p, context_length=None):
    """A ValueError that says what to change, for any option the model cannot honour.

    ``context_length``: the longest prompt the model takes (None: any length, as a recurrent model).
    """
    if len(prompt_bytes) == 0:
        raise ValueError("the prompt is empty: give at least one character to continue")
    if context_length is not None and len(prompt_bytes) > context_length:
        raise ValueError(f"the prompt is {len(prompt_bytes)} bytes (UTF-8), longer than the model's context of "
                         f"{context_length} bytes; shorten it (e.g. keep its last {context_length} bytes)")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if not temperature >= 0:  # also rejects NaN
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = no limit), got {top_k}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1 = no limit), got {top_p}")


def check_token(token, vocabulary_size=VOCAB_SIZE):
    if not 0 <= int(token) < vocabulary_size:
        what = "a byte" if vocabulary_size == VOCAB_SIZE else "a token id"
        raise ValueError(f"token must be {what}, 0..{vocabulary_size - 1}, got {token}")


def sample_token(logits, temperature, top_k, top_p, uniform):
    """One token from ``logits [vocabulary]`` (bytes: 256) by inverse-CDF sampling with one ``uniform`` in [0, 1)."""
    logits = np.asarray(logits, np.float32)
    if temperature <= 0:
        return int(np.argmax(logits))
    scaled = logits / np.float32(max(temperature, 1e-6))
    order = np.argsort(-scaled, kind="stable")  # like top_k: ties keep the lower byte first
    sorted_logits = scaled[order]
    exp = np.exp(sorted_logits - sorted_logits[0])
    probs = (exp / exp.sum(dtype=np.float32)).astype(np.float32)
    vocabulary = len(logits)
    rank = np.arange(vocabulary)
    keep_k = np.full(vocabulary, True) if top_k <= 0 else rank < top_k
    keep_p = (np.cumsum(probs, dtype=np.float32) - probs) < np.float32(top_p)
    kept = probs * ((keep_k & keep_p) | (rank == 0))
    cumulative = np.cumsum(kept, dtype=np.float32)
    threshold = np.float32(uniform) * cumulative[-1]
    index = min(int(np.sum(cumulative <= threshold)), vocabulary - 1)
    return int(order[index])


def sampling_noise(noise, seed, max_new_tokens):
    """``noise`` (checked to be long enough) or ``max_new_tokens`` uniform numbers from ``default_rng(seed)``."""
    if noise is None:
        return np.random.default_rng(seed).uniform(size=max_new_tokens).astype(np.float32)
    if len(noise) < max_new_tokens:
        raise ValueError(f"noise has {len(noise)} numbers, max_new_tokens is {max_new_tokens}")
    return noise


def add_sampling_arguments(parser, prompt="ROMEO:", max_new_tokens=300):
    """The app scripts' shared command-line options."""
    parser.add_argument("--prompt", default=prompt)
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    add_threads_argument(parser)


class RunnerDecoder:
    """``prefill`` and ``decode_step`` over ``run(signature, **inputs) -> outputs``: a LiteRT file's signature
    runners (:class:`TFLiteDecoder`) or any zoo runner (``zoo.load(...)``), with the host-side input checks
    a TFLite graph cannot make (the converter drops asserts: a position past the context would fail deep
    inside a GATHER, one below 0 run silently wrong)."""

    def __init__(self, run, context_length, vocabulary_size=VOCAB_SIZE):
        self.run, self.context_length, self.vocabulary_size = run, int(context_length), int(vocabulary_size)

    def prefill(self, tokens):
        for token in tokens:
            check_token(token, self.vocabulary_size)
        out = self.run("prefill", tokens=np.asarray([tokens], np.int32), lengths=np.asarray([len(tokens)], np.int32))
        return out["logits"][0], out["cache"]

    def check_step(self, token, position):
        if not 0 <= int(position) < self.context_length:
            raise ValueError(f"position must be in 0..{self.context_length - 1} (the context), got {position}")
        check_token(token, self.vocabulary_size)

    def decode_step(self, token, position, cache):
        self.check_step(token, position)
        out = self.run("decode_step", token=np.asarray([token], np.int32), position=np.asarray([position], np.int32),
                       cache=cache)
        return out["logits"][0], out["cache"]


class TFLiteDecoder(RunnerDecoder):
    """The ``prefill`` and ``decode_step`` signatures of a decoder LM's TFLite file (the zoo's GPT or a
    converted KerasHub model: the same names).

    Where the file has ``decode_step_kv`` (exports from 2026-12 on), the key/value cache lives in that
    signature's own input buffers: each token writes its keys and values there in place, and no cache is
    copied in or out (``decode_step`` passes the whole cache both ways: about a third of a GPT byte's time).
    ``prefill`` then returns a :class:`KeptCache` handle instead of the cache's numbers."""

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.manifest = verified_manifest(path)  # the manifest beside the file, after its sha256 matched
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads or os.cpu_count())  # every core unless told
        runners = {name: self.interpreter.get_signature_runner(name) for name in ("prefill", "decode_step")}
        decode = runners["decode_step"]
        super().__init__(lambda signature, **inputs: runners[signature](**inputs),
                         decode.get_input_details()["cache"]["shape_signature"][2],
                         decode.get_output_details()["logits"]["shape_signature"][-1])
        self._kept = None
        if "decode_step_kv" in self.interpreter.get_signature_list():
            self._kept = _CacheInInputBuffers(self.interpreter, self.interpreter.get_signature_runner("decode_step_kv"))
        self._generation = 0

    def prefill(self, tokens):
        logits, cache = super().prefill(tokens)
        if self._kept is None:
            return logits, cache
        self._kept.load(cache[0])
        self._generation += 1
        return logits, KeptCache(self, self._generation)

    def decode_step(self, token, position, cache):
        if self._kept is None:
            return super().decode_step(token, position, cache)
        self.check_step(token, position)
        if not isinstance(cache, KeptCache):  # numbers from elsewhere (e.g. a zoo runner's prefill): load them
            cache = np.asarray(cache, np.float32)
            if cache.ndim != 4 or cache.shape[0] != 1:
                raise ValueError(f"cache must be one row, [1, channels, context, head_dim], got shape {cache.shape}")
            self._kept.load(cache[0])
            self._generation += 1
        elif cache.decoder is not self or cache.generation != self._generation:
            raise ValueError("this cache was replaced by a later prefill (the decoder keeps one cache): "
                             "prefill again to go back to that text")
        logits = self._kept.step(int(token), int(position))
        return logits, KeptCache(self, self._generation)


class KeptCache:
    """What :meth:`TFLiteDecoder.prefill` returns where the cache stays in LiteRT's buffers: a handle to pass
    back to ``decode_step`` (the decoder keeps one cache; a handle from before a later prefill is refused)."""

    def __init__(self, decoder, generation):
        self.decoder, self.generation = decoder, generation


class _CacheInInputBuffers:
    """``decode_step_kv`` at batch 1 with its ``keys_i``/``values_i`` inputs as the cache itself: NumPy views of
    the input buffers, written in place (LiteRT never reuses a graph input's buffer). Only this signature's
    subgraph is ever allocated here, so the views stay valid."""

    def __init__(self, interpreter, runner):
        wrapper, subgraph = interpreter._interpreter, runner._subgraph_index
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        for details in inputs.values():  # batch 1 once, then allocate this subgraph once
            wrapper.ResizeInputTensor(details["index"], np.array([1, *details["shape_signature"][1:]], np.int32),
                                      False, subgraph)
        wrapper.AllocateTensors(subgraph)

        def view(details):
            return wrapper.tensor(interpreter, details["index"], subgraph)

        self.num_layers = sum(name.startswith("keys_") for name in inputs)
        self.invoke = lambda: wrapper.Invoke(subgraph)
        self.token, self.position = view(inputs["token"]), view(inputs["position"])
        self.keys = [view(inputs[f"keys_{i}"]) for i in range(self.num_layers)]      # [1, heads, context, head_dim]
        self.values = [view(inputs[f"values_{i}"]) for i in range(self.num_layers)]
        self.logits, self.new_keys, self.new_values = (view(outputs[name]) for name in ("logits", "keys", "values"))

    def load(self, cache):
        """``cache [2 * layers * heads, context, head_dim]`` (``prefill``'s row: each layer's keys, then its
        values) -> the input buffers."""
        heads = self.keys[0].shape[1]
        for i in range(self.num_layers):
            self.keys[i][0] = cache[2 * i * heads:(2 * i + 1) * heads]
            self.values[i][0] = cache[(2 * i + 1) * heads:(2 * i + 2) * heads]

    def step(self, token, position):
        self.token[0], self.position[0] = token, position
        self.invoke()
        for i in range(self.num_layers):  # this position's keys and values, written where the next step reads
            self.keys[i][0, :, position] = self.new_keys[0, i]
            self.values[i][0, :, position] = self.new_values[0, i]
        return self.logits[0].copy()


def generate_tokens(model, prompt_tokens, max_new_tokens, temperature=0.0, top_k=0, top_p=1.0, noise=None, seed=0,
                    slide=True, on_token=None, stop_token=None):
    """Continue ``prompt_tokens`` by up to ``max_new_tokens`` tokens through ``model.prefill`` and
    ``model.decode_step`` (the key/value cache); returns the new tokens.

    Args:
        noise: ``[max_new_tokens]`` uniform numbers in [0, 1), the randomness of
            each step (default: ``numpy.random.default_rng(seed)``).
        slide: at the context limit, re-prefill the last half of the context and
            go on (True), or stop there as the in-graph ``generate`` does (False).
        on_token: called with each new token (e.g. to stream it to the screen).
        stop_token: a token that ends generation (not returned), e.g. GPT-2's end of text.
    """
    prompt_tokens = list(prompt_tokens)
    context = model.context_length
    check_generation_options(prompt_tokens, max_new_tokens, temperature, top_k, top_p, context_length=context)
    noise = sampling_noise(noise, seed, max_new_tokens)
    text = list(prompt_tokens)
    generated = []
    logits, cache = model.prefill(text)
    while len(generated) < max_new_tokens:
        token = sample_token(logits, temperature, top_k, top_p, noise[len(generated)])
        if token == stop_token:
            break
        generated.append(token)
        text.append(token)
        if on_token is not None:
            on_token(token)
        if len(generated) == max_new_tokens:
            break
        if len(text) == context:  # the cache is full
            if not slide:
                break
            text = text[-(context // 2):]
            logits, cache = model.prefill(text)
        else:
            logits, cache = model.decode_step(token, len(text) - 1, cache)
    return generated


def stream_tokens(model, prompt_tokens, max_new_tokens, temperature=0.0, top_k=0, top_p=1.0, noise=None, seed=0,
                  on_token=None, state=None):
    """Continue ``prompt_tokens`` by ``max_new_tokens`` tokens through a recurrent ``model.step(token, state) ->
    (logits, state)`` (with ``model.zero_state()``): the character LSTM's loop; returns the new tokens.

    Args:
        noise: ``[max_new_tokens]`` uniform numbers in [0, 1) (default: ``numpy.random.default_rng(seed)``).
        on_token: called with each new token (e.g. to stream it to the screen).
        state: the state to start from (default: zeros, the start of a text).
    """
    prompt_tokens = list(prompt_tokens)
    check_generation_options(prompt_tokens, max_new_tokens, temperature, top_k, top_p)
    noise = sampling_noise(noise, seed, max_new_tokens)
    state = model.zero_state() if state is None else state
    for token in prompt_tokens:
        logits, state = model.step(token, state)
    generated = []
    for i in range(max_new_tokens):
        token = sample_token(logits, temperature, top_k, top_p, noise[i])
        generated.append(token)
        if on_token is not None:
            on_token(token)
        if i + 1 < max_new_tokens:
            logits, state = model.step(token, state)
    return generated


def generate_text(model, tokenizer, prompt, *, max_new_tokens=40, temperature=0.8, top_k=40, top_p=1.0, seed=0,
                  noise=None, stop_token=None, slide=True):
    """The continuation (str) of ``prompt`` with a tokenizer's ``encode`` (start token included) and ``decode``
    around :func:`generate_tokens` (a converted GPT-2's BPE, ``zoo/convert/bpe.py``).

    ``model``: a :class:`TFLiteDecoder`, or any object with ``prefill``, ``decode_step``,
    ``context_length``, or a zoo runner (wrapped in :class:`RunnerDecoder`).
    """
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("the prompt is empty: give at least one character to continue")
    if not hasattr(model, "prefill"):  # a zoo runner: its manifest gives the sizes
        decode = model.signatures["decode_step"]
        model = RunnerDecoder(model, decode["inputs"]["cache"]["shape"][2], decode["outputs"]["logits"]["shape"][-1])
    ids = tokenizer.encode(prompt)
    if len(ids) > model.context_length:
        raise ValueError(f"the prompt is {len(ids)} tokens (with the start token), longer than the model's context "
                         f"of {model.context_length}; shorten it")
    new = generate_tokens(model, ids, max_new_tokens, temperature, top_k, top_p, noise=noise, seed=seed,
                          slide=slide, stop_token=stop_token)
    return tokenizer.decode(new)

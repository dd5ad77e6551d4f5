"""The compiled attention kernel (tabular_suite.nn.native) and its fallback."""

import os
import stat

import pytest
import torch

from tabular_suite.nn import blocks, native
from tabular_suite.nn.blocks import attention


@pytest.fixture(autouse=True)
def _kernel_on(monkeypatch):
    """The kernel is tested on every CPU it builds on (by default it runs on AVX-512 CPUs only)."""
    monkeypatch.setenv("TABULAR_SUITE_NATIVE", "1")


def test_the_kernel_is_used_by_default_on_cpus_with_avx512_only(monkeypatch):
    """Unset, TABULAR_SUITE_NATIVE leaves the kernel to CPUs with AVX-512 (its 16-lane vectors
    in one register); elsewhere load() gives None and status() says why and how to force it."""
    monkeypatch.setattr(native, "_cpu", lambda: "x86_64\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 fma")
    assert not native._wide_vectors.__wrapped__()  # (uncached: the function reads _cpu() once a process)
    monkeypatch.setattr(native, "_cpu", lambda: "x86_64\nflags\t\t: fpu avx2 avx512f avx512bw")
    assert native._wide_vectors.__wrapped__()
    monkeypatch.delenv("TABULAR_SUITE_NATIVE")
    monkeypatch.setattr(native, "_wide_vectors", lambda: False)
    assert native.load() is None and "no AVX-512" in native.status() and "TABULAR_SUITE_NATIVE=1" in native.status()
    q = torch.randn(3, 5, 2, 8)
    calls = []
    monkeypatch.setattr(blocks._NativeAttention, "apply", lambda *a: calls.append(1))
    attention(q, q, q)
    assert not calls  # (the PyTorch path)
    monkeypatch.setattr(native, "_wide_vectors", lambda: True)
    assert (native.load() is not None) == (native._compiler() is not None), native.status()
    monkeypatch.setenv("TABULAR_SUITE_NATIVE", "0")
    assert native.load() is None and "TABULAR_SUITE_NATIVE=0" in native.status()


def _reference(qkv: torch.Tensor, scale: float) -> torch.Tensor:
    q, k, v = qkv.unbind(2)
    probs = torch.softmax(torch.einsum("nihd,njhd->nhij", q, k) * scale, -1)
    return torch.einsum("nhij,njhd->nihd", probs, v)


def test_the_kernels_build_where_there_is_a_compiler():
    """With a C++ compiler (as here) the kernels build and are used; without one, load()
    gives None and status() says why (the PyTorch path then runs, see below)."""
    if native._compiler() is None:
        assert native.load() is None and "no C++ compiler" in native.status()
    else:
        lib = native.load()
        assert lib is not None, native.status()
        assert native.status().startswith("native kernels: ") and str(native.cache_dir()) in native.status()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(37, 16, 2, 16), (13, 5, 3, 7), (9, 33, 1, 20), (5, 64, 2, 64), (6, 17, 4, 40)])
def test_attention_matches_fp64_with_gradients(monkeypatch, dtype, shape):
    """Output and gradients of the fused (n, t, 3, h, d) and of separate inputs against fp64
    einsum attention: token counts and head dims on and off the 16-lane padding."""
    calls = []
    apply = blocks._NativeAttention.apply
    monkeypatch.setattr(blocks._NativeAttention, "apply", lambda *a: calls.append(1) or apply(*a))
    torch.manual_seed(0)
    n, t, h, d = shape
    qkv = torch.randn(n, t, 3, h, d).to(dtype)
    grad = torch.randn(n, t, h, d).to(dtype)
    exact = qkv.double().requires_grad_()
    ref = _reference(exact, 0.7)
    (ref_grad,) = torch.autograd.grad(ref, exact, grad.double())
    # fp32 math in the kernel: bf16 adds only the output's and gradient's own rounding (the
    # PyTorch path, without a compiler, also rounds products and probabilities to bf16)
    tol = 1e-5 if dtype == torch.float32 else 1e-2 if native.load() is not None else 3e-2
    for inputs in ((qkv.clone().requires_grad_(),), None):
        if inputs is None:  # separate q, k, v (strided slices of one tensor)
            fused = qkv.clone().requires_grad_()
            out = attention(*fused.unbind(2), scale=0.7)
            (g,) = torch.autograd.grad(out, fused, grad)
        else:
            out = attention(inputs[0], scale=0.7)
            (g,) = torch.autograd.grad(out, inputs[0], grad)
        assert out.dtype == g.dtype == dtype and out.shape == (n, t, h, d) and g.shape == qkv.shape
        assert (out.double() - ref).abs().max() <= tol * ref.abs().max()
        assert (g.double() - ref_grad).abs().max() <= tol * ref_grad.abs().max()
    with torch.no_grad():  # inference keeps no probabilities: the same output
        assert torch.equal(attention(qkv, scale=0.7), out.detach())
    assert len(calls) == (3 if native.load() is not None else 0)


def test_threads_give_the_same_result():
    """With OpenMP the kernel shares samples out over threads, each computed as with one thread:
    bit-identical results. A build without OpenMP is single-threaded, so with two threads the
    PyTorch path runs instead (as without a compiler): the same results up to bf16 rounding."""
    lib = native.load()
    torch.manual_seed(0)
    qkv = torch.randn(64, 16, 3, 2, 16).bfloat16().requires_grad_()
    before = torch.get_num_threads()
    results, paths = [], []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            paths.append(blocks._use_native(qkv, None, None))
            out = attention(qkv, scale=1.0)
            results.append((out, *torch.autograd.grad(out.float().pow(2).sum(), qkv)))
    finally:
        torch.set_num_threads(before)
    assert paths == [lib is not None, lib is not None and lib.openmp]
    if paths == [True, True]:
        assert all(torch.equal(a, b) for a, b in zip(*results))
    else:  # (PyTorch's own kernels promise no bit-identity across thread counts either)
        for a, b in zip(*results):
            assert (a.double() - b.double()).abs().max() <= 0.02 * b.double().abs().max()


def test_the_pytorch_path_when_turned_off(monkeypatch):
    """TABULAR_SUITE_NATIVE=0: no kernels, the batched-GEMM path, the same results up to bf16 rounding."""
    torch.manual_seed(0)
    qkv = torch.randn(32, 16, 3, 2, 16).bfloat16()
    native_out = attention(qkv, scale=1.0)
    monkeypatch.setenv("TABULAR_SUITE_NATIVE", "0")
    assert native.load() is None and "TABULAR_SUITE_NATIVE=0" in native.status()
    assert not blocks._use_native(qkv, None, None)
    torch_out = attention(qkv, scale=1.0)
    ref = _reference(qkv.double(), 1.0)
    for out in (native_out, torch_out):
        assert (out.double() - ref).abs().max() < 0.02 * ref.abs().max()


def test_large_or_fp64_inputs_use_the_pytorch_path():
    q = torch.randn(2, 65, 3, 1, 8)
    assert not blocks._use_native(q, None, None)  # more than 64 tokens
    assert not blocks._use_native(q[:, :8].double(), None, None)
    v = torch.randn(2, 8, 1, 6)
    assert not blocks._use_native(q[:, :8, 0], q[:, :8, 1], v)  # values of another width


def test_build_caches_and_reports_compiler_errors(tmp_path, capsys):
    """A build lands in the cache folder under a hashed name and is reused; a compile says so in
    one line on stderr, a cache hit says nothing; a compiler that fails gives a RuntimeError
    with its message, never a half-written file. (The "compiler" here copies this machine's
    build, so no compile is timed; test_build_compiles_the_kernels_from_source compiles.)"""
    broken = tmp_path / "broken-cxx"
    broken.write_text("#!/bin/sh\necho 'cc: out of luck' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(RuntimeError, match="out of luck"):
        native.build(tmp_path / "broken", compiler=str(broken))
    assert not any((tmp_path / "broken").iterdir())
    with pytest.raises(RuntimeError, match="no C++ compiler|does not run"):
        native.build(tmp_path / "none", compiler=str(tmp_path / "missing-cxx"))
    compiler, lib = native._compiler(), native.load()
    if compiler is None:
        return
    assert lib is not None, native.status()
    copying = tmp_path / "copying-cxx"
    copying.write_text(
        f'#!/bin/sh\n[ "$1" = --version ] && exec "{compiler}" --version\n'
        'for a; do [ "$prev" = -o ] && out="$a"; prev="$a"; done\n'
        f'cp "{lib._name}" "$out"\n'
    )
    copying.chmod(copying.stat().st_mode | stat.S_IEXEC)
    capsys.readouterr()
    built_lib = native.build(tmp_path / "cache", compiler=str(copying))
    (built,) = (tmp_path / "cache").glob("attention-*.so")
    assert built_lib._name == str(built) and built.name != os.path.basename(lib._name)  # the compiler is in the hash
    assert built_lib.openmp == lib.openmp
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and "compiling the native attention kernel" in notice[0]
    mtime = os.stat(built).st_mtime_ns
    assert native.build(tmp_path / "cache", compiler=str(copying))._name == str(built)
    assert os.stat(built).st_mtime_ns == mtime  # reused, not rebuilt
    assert capsys.readouterr().err == ""  # a cache hit is silent
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [built.name]  # no temporary files left


@pytest.mark.slow
def test_build_compiles_the_kernels_from_source(tmp_path, capsys):
    """A real compile into an empty cache folder (~30-60 s): the kernels build with this machine's
    compiler, as the cached ones the other tests use."""
    compiler = native._compiler()
    if compiler is None:
        assert native.load() is None
        return
    lib = native.build(tmp_path / "cache", compiler=compiler)
    (built,) = (tmp_path / "cache").glob("attention-*.so")
    assert lib._name == str(built) and built.name == os.path.basename(native.load()._name)
    assert lib.openmp == native.load().openmp
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) >= 1 and all("compiling the native attention kernel" in line for line in notice)


def test_a_negative_scale_is_handled_by_the_pytorch_path():
    torch.manual_seed(0)
    qkv = torch.randn(4, 6, 3, 2, 8)
    torch.testing.assert_close(attention(qkv, scale=-0.5), _reference(qkv.double(), -0.5).float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(11, 21, 8, 8), (7, 5, 3, 7), (5, 40, 2, 32), (3, 64, 1, 64)])
def test_causal_attention_matches_fp64_with_gradients(monkeypatch, dtype, shape):
    """ExcelFormer's semi-permeable (causal) attention through the kernel: query i sees keys
    j <= i only, masked probabilities exactly 0 (their gradients too), against fp64 einsum."""
    calls = []
    apply = blocks._NativeAttention.apply
    monkeypatch.setattr(blocks._NativeAttention, "apply", lambda *a: calls.append(a[4]) or apply(*a))
    torch.manual_seed(0)
    n, t, h, d = shape
    q, k, v = (torch.randn(n, t, h, d).to(dtype) for _ in range(3))
    grad = torch.randn(n, t, h, d).to(dtype)
    exact = [x.double().requires_grad_() for x in (q, k, v)]
    scores = torch.einsum("nihd,njhd->nhij", exact[0], exact[1]) * d**-0.5
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    ref = torch.einsum("nhij,njhd->nihd", torch.softmax(scores.masked_fill(~mask, float("-inf")), -1), exact[2])
    ref_grads = torch.autograd.grad(ref, exact, grad.double())
    inputs = [x.clone().requires_grad_() for x in (q, k, v)]
    out = blocks.causal_attention(*inputs)
    grads = torch.autograd.grad(out, inputs, grad)
    tol = 1e-5 if dtype == torch.float32 else 1e-2 if native.load() is not None else 3e-2
    assert out.dtype == dtype and out.shape == (n, t, h, d)
    assert (out.double() - ref).abs().max() <= tol * ref.abs().max()
    for g, r in zip(grads, ref_grads):
        assert (g.double() - r).abs().max() <= tol * r.abs().max()
    # the first query sees only the first key: its output is that key's value, exactly
    torch.testing.assert_close(out[:, 0], v[:, 0], rtol=tol, atol=tol)
    assert calls == ([True] if native.load() is not None else [])


def test_transformer_self_attention_through_the_kernel_matches_sdpa():
    """FT-Transformer's attention at inference on CPU (one fused projection, the kernel) gives
    what PyTorch's SDPA over the three projections gives; in training, dropout included."""
    torch.manual_seed(0)
    attn = blocks.MultiheadAttention(d=32, n_heads=4, dropout=0.5)
    x = torch.randn(50, 9, 32)

    def sdpa(dropout_p=0.0):
        q, k, v = (attn._split(w(x)) for w in (attn.W_q, attn.W_k, attn.W_v))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        return attn.W_out(out.transpose(1, 2).flatten(2))

    with torch.no_grad():
        torch.testing.assert_close(attn.eval()(x, x), sdpa(), rtol=1e-5, atol=1e-5)
        attn.train()
        first, second = attn(x, x), attn(x, x)
    assert not torch.allclose(first, second)  # dropout on the probabilities in training
    # (mean over dropout draws: the expected probabilities, as SDPA's)
    with torch.no_grad():
        mean = torch.stack([attn(x, x) for _ in range(400)]).mean(0)
    torch.testing.assert_close(mean, sdpa(), rtol=0, atol=0.05)


@pytest.mark.parametrize("causal", [False, True])
def test_dropout_matches_its_mask_with_gradients(monkeypatch, causal):
    """Dropout on the probabilities (the kernel's, or the PyTorch path's without a compiler; a
    rate of 1/4, which both keep exactly): with values that are the identity (d >= t) the output
    is the dropped probabilities themselves, so the mask a seed gives can be read; the same seed
    again (torch.manual_seed) gives the same mask, and the output and gradients equal fp64
    attention with that mask (kept probabilities scaled by 1 / (1 - p)). About p are dropped."""
    calls = []
    apply = blocks._NativeAttention.apply
    monkeypatch.setattr(blocks._NativeAttention, "apply", lambda *a: calls.append(1) or apply(*a))
    n, t, h, d, p = 64, 19, 2, 24, 0.25

    def attend(q, k, v):
        return blocks.causal_attention(q, k, v, p) if causal else attention(q, k, v, dropout_p=p)

    torch.manual_seed(0)
    q, k, v = (torch.randn(n, t, h, d) for _ in range(3))
    eye = torch.eye(t, d).expand(n, h, t, d).transpose(1, 2).contiguous()
    torch.manual_seed(5)
    dropped = attend(q, k, eye)  # (n, i, h, j): P_ij after dropout
    seen = torch.ones(t, t, dtype=torch.bool).tril() if causal else torch.ones(t, t, dtype=torch.bool)
    kept = (dropped[..., :t] != 0).permute(0, 2, 1, 3)  # (n, h, i, j)
    share = 1 - kept[:, :, seen].double().mean().item()
    assert abs(share - p) < 0.01, share
    torch.manual_seed(5)
    inputs = [x.clone().requires_grad_() for x in (q, k, v)]
    out = attend(*inputs)
    grad = torch.randn(n, t, h, d)
    grads = torch.autograd.grad(out, inputs, grad)
    exact = [x.double().requires_grad_() for x in (q, k, v)]
    scores = torch.einsum("nihd,njhd->nhij", exact[0], exact[1]) * d**-0.5
    probs = torch.softmax(scores.masked_fill(~seen, float("-inf")), -1) * kept / (1 - p)
    ref = torch.einsum("nhij,njhd->nihd", probs, exact[2])
    ref_grads = torch.autograd.grad(ref, exact, grad.double())
    assert (out.double() - ref).abs().max() <= 1e-5 * ref.abs().max()
    for g, r in zip(grads, ref_grads):
        assert (g.double() - r).abs().max() <= 1e-5 * r.abs().max()
    torch.manual_seed(6)  # another seed, another mask
    assert not torch.equal(attend(q, k, eye)[..., :t] != 0, dropped[..., :t] != 0)
    assert len(calls) == (3 if native.load() is not None else 0)


def test_a_dropout_rate_of_one_is_handled_by_the_pytorch_path():
    """The kernel takes rates below 1 (it refuses others); a rate of 1 goes to the PyTorch path
    instead of failing there."""
    out = attention(torch.randn(4, 6, 3, 2, 8), dropout_p=1.0)
    assert out.shape == (4, 6, 2, 8) and torch.isfinite(out).all()

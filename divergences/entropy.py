"""Kullback–Leibler and Jensen–Shannon divergences between histograms."""

import math

import torch

from divergences import _validation

__all__ = ["kl", "js", "js_distance"]


def kl(p, q, *, axis=-1, base=None):
    r"""Kullback–Leibler divergence KL(p ‖ q) between histograms.

    .. math::

        \mathrm{KL}(p \,\|\, q) = \sum_i p_i \log \frac{p_i}{q_i}

    Parameters
    ----------
    p, q : (..., N) array_like or torch.Tensor, >= 0
        Histograms along ``axis``; each is normalised to sum to one along
        ``axis`` first (as :func:`scipy.stats.entropy` does).  Leading axes are
        batch axes and broadcast together.
    axis : int or None, optional
        The axis holding the bins.  Default: the last one.  ``None``: each of
        ``p`` and ``q`` (of one shape) is one histogram whose entries are the
        bins, a multi-dimensional one such as ``np.histogram2d``'s.
    base : float, optional
        Logarithm base, > 1; the default ``None`` gives nats (natural log).

    Returns
    -------
    divergence : (...) ndarray or torch.Tensor
        KL(p ‖ q) in ``[0, inf]``, in the library, dtype and device of the
        inputs (numpy float64 unless float32 was given).  ``inf`` where some
        bin has ``p_i > 0`` and ``q_i = 0``.

    Raises
    ------
    ValueError
        Negative, NaN or infinite entries, zero total mass, empty inputs,
        different lengths along ``axis``, an invalid ``base``, numpy and
        torch mixed, or tensors on different devices.
    TypeError
        Non-numeric inputs.

    Notes
    -----
    Bins with ``p_i = 0`` contribute 0 (0 · log 0 = 0).  For torch inputs the
    gradient is finite wherever the value is: at ``p_i = 0`` the bin's own term
    contributes no gradient (the one-sided derivative of p log p is -inf there).
    KL is not symmetric.  ``scipy.stats.entropy(p, q)`` computes the same value.

    Examples
    --------
    A histogram against itself:

    >>> float(kl([0.25, 0.75], [0.25, 0.75]))
    0.0

    Two bins, in bits: KL((1, 0) ‖ (1/2, 1/2)) = log2(2) = 1.

    >>> float(kl([1, 0], [1, 1], base=2))
    1.0

    Mass where q has none makes the divergence infinite:

    >>> float(kl([1, 1], [1, 0]))
    inf
    """
    converter, p, q, log_base = _histogram_pair(p, q, axis, base)
    return converter.back(_kl_nats(p, q) / log_base)


def js(p, q, *, axis=-1, base=None):
    r"""Jensen–Shannon divergence between histograms.

    .. math::

        \mathrm{JS}(p, q) = \tfrac12 \mathrm{KL}(p \,\|\, m) + \tfrac12 \mathrm{KL}(q \,\|\, m),
        \qquad m = \tfrac12 (p + q)

    Parameters
    ----------
    p, q : (..., N) array_like or torch.Tensor, >= 0
        Histograms along ``axis``, each normalised to sum to one first.
        Leading axes are batch axes and broadcast together.
    axis : int or None, optional
        The axis holding the bins.  Default: the last one.  ``None``: each of
        ``p`` and ``q`` (of one shape) is one histogram whose entries are the
        bins, a multi-dimensional one such as ``np.histogram2d``'s.
    base : float, optional
        Logarithm base, > 1; the default ``None`` gives nats.

    Returns
    -------
    divergence : (...) ndarray or torch.Tensor
        JS(p, q) in ``[0, log 2]`` nats (``[0, 1]`` with ``base=2``), in the
        library, dtype and device of the inputs.

    Raises
    ------
    ValueError
        Negative, NaN or infinite entries, zero total mass, empty inputs,
        different lengths along ``axis``, an invalid ``base``, numpy and
        torch mixed, or tensors on different devices.
    TypeError
        Non-numeric inputs.

    See Also
    --------
    js_distance : its square root, the Jensen–Shannon *distance*.

    Notes
    -----
    This is the *divergence*; :func:`scipy.spatial.distance.jensenshannon`
    returns the distance, its square root: ``js(p, q) == jensenshannon(p, q)**2``.
    It is computed as

    .. math::

        \log 2 + \tfrac12 \sum_i \left[ p_i \log p_i + q_i \log q_i
        - (p_i + q_i) \log (p_i + q_i) \right],

    where each bracket is <= 0 and vanishes exactly when the bin is empty in p
    or in q, so disjoint supports give exactly log 2, the value a GAN
    discriminator sees when real and generated samples do not overlap.
    Identical histograms give 0 up to round-off: the absolute error is a few
    units of round-off of the dtype (about 1e-16 in float64, 1e-7 in float32).

    Examples
    --------
    Disjoint supports give exactly log 2 (one bit):

    >>> float(js([1, 0, 0], [0, 1, 0])) == math.log(2)
    True
    >>> float(js([1, 0, 0], [0, 1, 0], base=2))
    1.0

    Identical histograms give 0, to round-off:

    >>> bool(js([1, 2, 3], [2, 4, 6]) < 1e-15)
    True
    """
    converter, p, q, log_base = _histogram_pair(p, q, axis, base)
    return converter.back(_js_nats(p, q) / log_base)


def js_distance(p, q, *, axis=-1, base=None):
    r"""Jensen–Shannon distance: the square root of :func:`js`.

    This is the quantity :func:`scipy.spatial.distance.jensenshannon` returns,
    and a metric on histograms (it satisfies the triangle inequality).

    Parameters
    ----------
    p, q : (..., N) array_like or torch.Tensor, >= 0
        Histograms along ``axis``, each normalised to sum to one first.
    axis : int or None, optional
        The axis holding the bins.  Default: the last one.  ``None``: each of
        ``p`` and ``q`` (of one shape) is one histogram whose entries are the
        bins, a multi-dimensional one such as ``np.histogram2d``'s.
    base : float, optional
        Logarithm base (> 1) used for the divergence; default nats.

    Returns
    -------
    distance : (...) ndarray or torch.Tensor
        sqrt(JS(p, q)), in ``[0, sqrt(log 2)]`` (``[0, 1]`` with ``base=2``).

    Raises
    ------
    ValueError, TypeError
        As :func:`js`.

    Notes
    -----
    For torch inputs the gradient where the computed divergence is exactly 0
    (the square root is not differentiable there) is taken as 0; near-equal
    histograms whose divergence is a round-off error above 0 get the finite
    gradient of that value.

    Examples
    --------
    >>> float(js_distance([1, 0], [0, 1], base=2))
    1.0
    """
    converter, p, q, log_base = _histogram_pair(p, q, axis, base)
    divergence = _js_nats(p, q) / log_base
    positive = divergence > 0
    root = torch.sqrt(torch.where(positive, divergence, torch.ones_like(divergence)))
    return converter.back(torch.where(positive, root, torch.zeros_like(root)))


def _histogram_pair(p, q, axis, base):
    """Validate two histograms and a log base.

    Returns the converter back to the caller's library, the histograms as
    tensors normalised with the bins last, and log(base) (1 for nats).
    """
    converter, (p, q) = _validation.convert(p=p, q=q)
    for name, value in (("p", p), ("q", q)):
        _validation.check_nonempty(name, value)
    if axis is None:  # one histogram each, of any shape (np.histogram2d's, say): its entries are the bins
        if p.shape != q.shape:
            raise ValueError(f"with axis=None, `p` and `q` should be histograms of one shape. Instead, received "
                             f"shapes {tuple(p.shape)} and {tuple(q.shape)}.")
        p, q, axis = p.reshape(-1), q.reshape(-1), -1
    # As scipy: the arrays broadcast together first, then `axis` indexes the result.
    ndim = max(p.ndim, q.ndim)
    p, q = p.reshape((1,) * (ndim - p.ndim) + p.shape), q.reshape((1,) * (ndim - q.ndim) + q.shape)
    axis = _validation.check_axis(axis, p)
    if 1 not in (p.shape[axis], q.shape[axis]):
        _validation.check_same_length("p", p, "q", q, axis, what="number of bins")
    shape = _validation.broadcast_batch(p=p.shape, q=q.shape)
    p, q = torch.movedim(p.expand(shape), axis, -1), torch.movedim(q.expand(shape), axis, -1)
    try:
        p = _validation.check_mass("p", p).normalised
        q = _validation.check_mass("q", q).normalised
    except ValueError as error:
        if p.ndim < 2 or "positive total mass" not in str(error):
            raise
        raise ValueError(f"{error} Each of the {math.prod(p.shape[:-1])} histograms of a (..., N) batch needs one; "
                         f"for one multi-dimensional histogram (np.histogram2d's, say) pass axis=None.") from None
    return converter, p, q, _validation.check_base(base)


def _kl_nats(p, q):
    """KL(p ‖ q) in nats of normalised histograms with bins last."""
    return _RelativeEntropy.apply(p, q).sum(-1).clamp(min=0)


def _js_nats(p, q):
    """JS(p, q) in nats of normalised histograms with bins last."""
    mixed = _MixtureBracket.apply(p, q)
    return (math.log(2) + 0.5 * mixed.sum(-1)).clamp(0, math.log(2))


class _MixtureBracket(torch.autograd.Function):
    """p log p + q log q - (p + q) log(p + q), elementwise (<= 0).

    Its partial derivative in p is log(p / (p + q)); where p = 0 that is -inf
    (the one-sided slope), and it is taken as 0 instead, as torch does for
    xlogy.  So a bin empty in one histogram passes no gradient to it, and JS
    between disjoint supports, flat at log 2, has a gradient of exactly 0.
    """

    @staticmethod
    def forward(p, q):
        # Two buffers instead of six temporaries: on large batches allocation dominates.
        bracket = torch.xlogy(p, p)
        buffer = torch.add(p, q)
        bracket.sub_(torch.xlogy(buffer, buffer, out=buffer))
        return bracket.add_(torch.xlogy(q, q, out=buffer))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad):
        p, q = ctx.saved_tensors
        log_total = torch.log(torch.where(p + q > 0, p + q, 1.0))
        slope_p = torch.where(p > 0, torch.log(torch.where(p > 0, p, 1.0)) - log_total, 0.0)
        slope_q = torch.where(q > 0, torch.log(torch.where(q > 0, q, 1.0)) - log_total, 0.0)
        return grad * slope_p, grad * slope_q


class _RelativeEntropy(torch.autograd.Function):
    """p log p - p log q, elementwise: 0 where p = 0 and +inf where p > 0 = q.

    Its gradients are log(p / q) + 1 in p and -p / q in q where p > 0 and
    q > 0; where p = 0 the bin passes no gradient (its one-sided slope in p
    is -inf, taken as 0, as torch does for xlogy).
    """

    @staticmethod
    def forward(p, q):
        return torch.xlogy(p, p).sub_(torch.xlogy(p, q))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad):
        p, q = ctx.saved_tensors
        both = (p > 0) & (q > 0)
        safe_p, safe_q = torch.where(both, p, 1.0), torch.where(both, q, 1.0)
        slope_p = torch.where(both, torch.log(safe_p / safe_q) + 1, 0.0)
        slope_q = torch.where(both, -safe_p / safe_q, 0.0)
        return grad * slope_p, grad * slope_q

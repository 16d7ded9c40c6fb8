"""Networks: the norm registry, the normalization layers and the transformer network.

* :mod:`styler.nn.registry` (torch-free): one :class:`~styler.nn.registry.NormKind` entry per norm kind;
* :mod:`styler.nn.spec` (torch-free): :class:`~styler.nn.spec.NormSpec` and :class:`~styler.nn.spec.ArchSpec`, the
  serializable descriptions stored in model files;
* :mod:`styler.nn.kinds`: the torch side of each kind, one module per kind (build, freeze for tiling, synchronize);
* :mod:`styler.nn.norms`: :func:`~styler.nn.norms.make_norm` and network-wide norm queries;
* :mod:`styler.nn.network`: :class:`~styler.nn.network.TransformerNet`.
"""

"""torch.hub entry points: one per bundled model, returning the rebuilt network.

    net = torch.hub.load("path/to/styler", "starry_night_in", source="local")       # a TransformerNet, eval mode
    net = torch.hub.load("path/to/styler", "starry_night_in", source="local", pretrained=False)  # same arch, fresh

Why generated from the zoo: the entry points must name exactly the models that ship (``styler/models/``), so a
model added to the zoo is loadable by hub without touching this file. Everything here but the entry points starts
with an underscore, because torch.hub lists every public callable of this module as a model.
"""

dependencies = ["torch", "safetensors"]


def _entry(name: str):  # noqa: ANN202 - returns the entry point built below
    def load(pretrained: bool = True, device: str = "cpu"):  # noqa: ANN202 - a TransformerNet (torch imported late)
        from styler.io.modelfile import load_model, read_header
        from styler.io.zoo import find_model
        from styler.nn.network import TransformerNet

        path = find_model(name)
        if pretrained:
            return load_model(path, device=device).net
        return TransformerNet(read_header(path).arch).eval().to(device)

    load.__name__ = load.__qualname__ = name
    load.__doc__ = (f"The bundled model {name!r} as a TransformerNet in eval mode (RGB in [0, 1], N×3×H×W); "
                    "pretrained=False gives the same architecture with fresh weights.")
    return load


def _install_entries() -> None:
    from styler.io.zoo import BUNDLED_DIR, models_in

    for _name in models_in(BUNDLED_DIR):
        globals()[_name] = _entry(_name)


_install_entries()

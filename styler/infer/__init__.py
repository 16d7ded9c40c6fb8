"""Inference: stylizing image files with a trained model.

``styler apply`` is one straight line through this package; each step names the module that owns it::

    options (styler.cli.apply)
    → inputs expanded to files (styler.io.images.expand_inputs; earlier outputs skipped)      apply.apply_files
    → each output named and checked: never an input, never twice, existing only with --force  apply.OutputPolicy
    → decoded to RGB float + alpha (styler.io.images.read_image)
    → batched, up to --batch-size images                                                       apply.apply_files
    → resized to the processing size (--scale, then --max-size)                                sizing.processing_size
    → tiled or not (estimated activation memory against --memory-budget, or --tile-size)       sizing.tile_plan
    → network: padded to multiples of 4, run, cropped back                                     stylizer.Stylizer
        untiled: the backend (eager torch | compiled | ONNX Runtime)                           backends.open_backend
        tiled:   eager fp32 torch, tile by tile with whole-image statistics                    tiling.tiled_forward
    → colour preservation (YCbCr or Lab), then the strength blend                              color
    → alpha re-attached, encoded and written (styler.io.images.write_image)
    → one ApplyRecord per input                                                                apply.ApplyRecord
    → warnings, summary or JSON, exit code (styler.cli.apply)

Torch is imported only by the torch backends, by tiling, and by the first ONNX export of a model; with a cached
export the whole line runs without it (:mod:`styler.infer.onnx_export`).
"""

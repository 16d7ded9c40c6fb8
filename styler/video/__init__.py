"""Stylizing videos: PyAV in and out, the Stylizer in between, and the temporal routes against flicker.

Modules (none imports torch unless the ``stats`` route or ``--style`` asks for eager torch):

* :mod:`.source` — probe and decode (any FFmpeg input; animated WebP through Pillow), audio packets;
* :mod:`.sink` — encode by output suffix (H.264 MP4 by default), timestamps kept, audio copied or re-encoded;
* :mod:`.temporal` — :class:`~.temporal.FrameStylizer`: batches through the Stylizer with the routes of
  :mod:`.motion` (the 4-px grid), :mod:`.blend` (flow blending) and :mod:`.statsmooth` (smoothed norm statistics);
* :mod:`.pipeline` — :func:`~.pipeline.stylize_video`, the whole job with an atomic rename;
* :mod:`.metrics` and :mod:`.synthetic` — the flicker and detail measures and the clips with known motion they
  are measured on (``scripts/bench_video.py``, ``scripts/video_norms.py``, the tests).

Needs the ``video`` extra (PyAV, OpenCV for the DIS optical flow).
"""

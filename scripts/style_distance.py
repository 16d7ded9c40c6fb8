"""How far each painting's style statistics are from photos', relative to a reference painting.

Why: the default style weight (5 with the Caffe VGG) was set for paintings like Starry Night. A painting whose Gram
matrices are much farther from a photo's gets a much larger style loss at the same weight, and its network can give
up the photo for a generic texture (the zoo's Great Wave did at weight 5; README, "Style weight per painting"). This
prints, per style image, the style loss of photos (centre crops, as if the network returned them unchanged) against
it, and its ratio to the reference painting's. A high ratio says "start with a lower --style-weight and watch the
previews"; it does not say which weight will work.

    python scripts/style_distance.py --vgg-weights ../shared/weights/vgg16-imagenet-caffe-features.pth \\
        --photos ../shared/data/content/train --reference ../shared/data/style/starry_night.jpg \\
        --styles ../shared/data/style/*.jpg
"""
from __future__ import annotations

import argparse

import torch

from styler.io.images import find_images, open_rgb, pil_to_tensor
from styler.loss.criterion import build_criterion
from styler.loss.losses import PerceptualLoss
from styler.loss.lossnet import resolve_lossnet_spec
from styler.train.data import resize_short_side


def photo_batch(folder: str, count: int, size: int) -> torch.Tensor:
    """``count`` photos spread evenly over the folder, short side resized and centre-cropped to size×size."""
    files = find_images(folder)
    if not files:
        raise SystemExit(f"no images in {folder}")
    picked = files[:: max(1, len(files) // count)][:count]
    crops = []
    for path in picked:
        img = resize_short_side(open_rgb(path), size)
        left, top = (img.width - size) // 2, (img.height - size) // 2
        crops.append(pil_to_tensor(img.crop((left, top, left + size, top + size))))
    return torch.cat(crops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--styles", nargs="+", required=True, help="style images")
    parser.add_argument("--reference", required=True, help="a style image whose default weight is known to work")
    parser.add_argument("--photos", required=True, help="folder of photos (e.g. the training set)")
    parser.add_argument("--vgg-weights", required=True, help="Caffe-convention VGG16 features state_dict")
    parser.add_argument("--count", type=int, default=32, help="photos to average over")
    parser.add_argument("--size", type=int, default=160, help="photo crop size (the zoo preset's)")
    parser.add_argument("--style-size", type=int, default=256, help="style image long side (the default)")
    args = parser.parse_args()

    # The default Caffe weights: the question is how the *default* style weight behaves on each painting.
    criterion = build_criterion(resolve_lossnet_spec("file", args.vgg_weights, "caffe"), args.reference,
                                style_size=args.style_size)
    photos = photo_batch(args.photos, args.count, args.size)

    def style_loss(loss: PerceptualLoss) -> float:
        with torch.no_grad():
            return loss(photos, photos).style.item()

    reference = style_loss(criterion.loss)
    print(f"{len(photos)} photos at {args.size} px; style weight {criterion.weights.style:g}; "
          f"reference {args.reference}: {reference:.3g}")
    print("| style | style loss of photos | × reference |")
    print("|---|---|---|")
    for style in args.styles:
        value = style_loss(criterion.with_style(style, args.style_size).loss)
        print(f"| {style} | {value:.3g} | {value / reference:.2f} |")

if __name__ == "__main__":
    main()

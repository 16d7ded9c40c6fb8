"""The perceptual loss: the frozen VGG16 loss network and the content, style and TV terms."""

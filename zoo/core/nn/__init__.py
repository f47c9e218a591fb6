"""The network families models share: GAN blocks and the adversarial model, U-Net + DDIM, the decoder LM and
byte sampling, weight averages, input checks, the replica helpers a train step uses and in-graph loops int8 calibration can run."""

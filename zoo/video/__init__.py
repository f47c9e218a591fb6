"""Moving MNIST video: predict the next ten frames and generate clips of chosen digits."""

"""Class-conditional DCGAN (Mirza & Osindero 2014; projection discriminator, Miyato & Koyama 2018) on MNIST."""

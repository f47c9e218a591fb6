"""Model-agnostic code every model in the zoo shares: data, training, export, metrics, plots."""

"""Export to the zoo's contract: SavedModel (TF Serving layout), TFLite float32/float16/int8 with builtin ops
only, ``manifest.json``; each runtime measured. The public names are those of :mod:`.exporter`."""

from zoo.core.export.exporter import (PRODUCT_OPS, REPRESENTATIVE_LOOP_ROWS, REPRESENTATIVE_ROWS, TFLITE_VARIANTS, ExportPlan, Signature, check_builtin_only,  # noqa: F401
                                      convert_to_tflite, export_model, export_summary, format_table, inference_copy,
                                      loop_run_time_shapes,
                                      machine_description, noise_batches, quantization_check, reconvert_tflite, signatures_manifest,
                                      training_record, write_saved_model)

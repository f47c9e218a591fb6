"""What an app or a TF Serving client needs: errors, files, the manifest's signature schema, loaders and runners
of exported models (sha256-checked, inputs checked), UTF-8 rows, REST request bodies. Imports no other zoo package."""

"""Input and output: finding and decoding inputs, preprocessing, pictures, files and the job page.

Everything that touches the file system or turns arrays into pictures lives here, so that
the engine and the jobs stay free of file formats. Nothing here imports the engine.
"""

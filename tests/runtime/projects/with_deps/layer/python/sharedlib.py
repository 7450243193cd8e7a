NAME = "shared layer"

"""dubstudio.training"""

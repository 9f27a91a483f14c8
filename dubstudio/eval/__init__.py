"""dubstudio.eval"""

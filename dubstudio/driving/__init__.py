"""dubstudio.driving"""

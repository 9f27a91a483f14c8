"""dubstudio.rendering"""

"""dubstudio.tracking"""

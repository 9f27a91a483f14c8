"""dubstudio.io"""

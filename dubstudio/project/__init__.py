"""dubstudio.project"""

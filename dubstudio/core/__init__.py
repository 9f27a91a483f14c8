"""dubstudio.core"""

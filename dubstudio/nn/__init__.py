"""dubstudio.nn"""

"""dubstudio.export"""

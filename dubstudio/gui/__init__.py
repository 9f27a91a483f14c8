"""dubstudio.gui"""

"""Toy parts for Conveyor, added from outside its package through entry points."""

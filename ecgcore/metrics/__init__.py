"""The challenges' scores: CinC 2017 F1 and the CinC 2020/2021 challenge metric."""

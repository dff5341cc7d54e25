"""minirnn: recurrent networks in pure NumPy with hand-written forward and backward passes."""
from .data import (Batch, DataLoader, SequenceBatcher, TensorDataset, Vocab, fold_to_ascii, pad_sequences, read_name_csv,
                   split_text, stream_batches)
from .gradcheck import GradcheckReport, gradcheck
from .init import manual_seed
from .layers import Dropout, Embedding, Linear
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .machinery import get_direction_processes, set_direction_processes
from .module import IncompatibleKeys, Module, Parameter, Sequential, enable_grad, is_grad_enabled, no_grad
from .onnx_export import OnnxExport, OnnxGraph, export_onnx
from .optim import (SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, clip_grad_norm, clip_grad_norm_, clip_grad_value,
                    clip_grad_value_)
from . import reference
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .serialization import (Checkpoint, from_torch_state_dict, load, load_checkpoint, load_module, module_config,
                            module_from_config, save)
from .safetensors_format import load_safetensors, save_safetensors
from .torch_format import load_torch, save_torch

__version__ = "0.1.0"

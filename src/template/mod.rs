//! DCE `{{$$.Var$$}}` templates (STUB, replaced by the delivery work).

"""What turns text into scores: offline backbones (`backbones`), the ConPET input encoding (`encoding`), peft LoRA
modules with their heads (`modules`), the representation a head reads (`representations`) and the logit caches
(`logit_cache`). Imports `conpet.core` and `conpet.data` only."""

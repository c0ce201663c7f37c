"""What the model proposes for the expert to review: the mention detector (`detector`), relation candidates with
the relatedness gate (`relation_candidates`), their combination into sentence suggestions (`suggestions`),
mention spans (`mentions`), the doubt score of the Next most useful queue (`uncertainty`) and the suggesters'
folders (`folders`). Imports `conpet.core`, `conpet.data`, `conpet.model` and the methods' replay helpers."""
